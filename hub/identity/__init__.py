"""Device identity and control: keys, binding, signed commands, the light-node verifier, the gate.

The whitepaper's device layer (DESIGN.md, "Device identity and control"). Every command that reaches
a device passes :mod:`hub.identity.gate`, which knows who sent it: the local owner (an API token),
a rule, a signer (the controller, a shared admin, a renter holding a grant) or the chain.
"""
