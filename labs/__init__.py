"""fabriclab.labs"""
