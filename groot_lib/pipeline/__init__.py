"""What the notebooks call: produce (original kernel), replay + consume (LeRobot kernel), hand-off."""
