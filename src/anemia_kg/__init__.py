"""anemia-kg: an evidence-first clinical knowledge graph of anemia, B12 deficiency and neuropathy."""

__version__ = "0.1.0"
