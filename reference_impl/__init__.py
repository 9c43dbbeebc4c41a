"""pgolf's own reference implementation of a Parameter Golf run: model, Muon, data, exact bpb,
artifact, training loop, legal n-gram cache and the record exporter. Imports torch; nothing under
auditor/ or rules/ imports this package at module level."""
