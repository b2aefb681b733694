"""The course in the language of other systems: FHIR R4B resources built from its event stream.

Not named `fhir`: that is the namespace of the `fhir.resources` library this package validates with.
"""
