"""OCI images of the stack, built without a Docker daemon from Debian packages (mmdebstrap) and
umoci: ``holdfast images build`` / ``make images``. See build.py for what each image holds."""
