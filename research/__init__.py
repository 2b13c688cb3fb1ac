"""Research scripts behind the shipped router (train-only CV, split noise, post-hoc checks).

Not part of the product: nothing in app/, deployments/ or router_models/ imports this
package. What each script found is in research/README.md.
"""
