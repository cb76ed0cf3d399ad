"""fabriclab.traffic"""
