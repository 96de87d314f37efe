"""Rule engine: schema and loading of YAML rule packs, text normalisation and segmentation,
matchers (phrases, regex, proximity, negation, questions, hearsay), call-level checks, self-test
of each rule's examples and evaluation on labelled TSV files."""
