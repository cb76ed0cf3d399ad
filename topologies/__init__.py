"""fabriclab.topologies"""
