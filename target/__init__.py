"""fabriclab.target"""
