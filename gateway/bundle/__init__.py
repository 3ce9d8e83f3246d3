"""The offline bundle: everything an air-gapped install needs, in one verifiable archive.

``build`` assembles it (wheelhouse, binaries, models, Helm chart, Ansible playbook, manifest,
``SHA256SUMS``, CycloneDX SBOM, tar archive); ``verify`` checks a bundle directory or archive and
names exactly what is missing, altered or unexpected.
"""
