"""fabriclab.p4runtime: the P4Runtime server every switch runs and the client the controller uses."""
