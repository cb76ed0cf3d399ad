"""fabriclab.bench"""
