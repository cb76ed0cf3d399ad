"""fabriclab.controller"""
