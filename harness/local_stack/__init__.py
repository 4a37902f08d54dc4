"""The Task API on the local cloud (:mod:`localcloud`): synthesize, deploy, run, reload."""
