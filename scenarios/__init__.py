"""fabriclab.scenarios"""
