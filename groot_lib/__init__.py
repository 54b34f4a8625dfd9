"""gr00t-parity: does LeRobot's GR00T N1.7 compute what NVIDIA's gr00t computes?"""
