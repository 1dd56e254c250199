"""The namespace table: plain strings for the query workers (``anemia_kg.namespaces``), rdflib namespaces for
the build (``anemia_kg.iris``), one source."""

from __future__ import annotations

from rdflib.namespace import DCTERMS, OWL, PROV, RDF, RDFS, SKOS, XSD

from anemia_kg import iris
from anemia_kg.executor import PREFIX_MAP
from anemia_kg.namespaces import PREFIX_IRIS


def test_the_standard_namespaces_are_rdflibs_own() -> None:
    standard = {"rdf": RDF, "rdfs": RDFS, "owl": OWL, "xsd": XSD, "skos": SKOS, "dcterms": DCTERMS, "prov": PROV}
    assert {prefix: PREFIX_IRIS[prefix] for prefix in standard} == {p: str(ns) for p, ns in standard.items()}


def test_the_rdflib_namespaces_and_the_query_prefixes_are_the_plain_table() -> None:
    assert {prefix: str(ns) for prefix, ns in iris.PREFIXES.items()} == PREFIX_IRIS == PREFIX_MAP
    assert list(PREFIX_MAP) == list(PREFIX_IRIS)  # the order @prefix lines are written in
    assert str(iris.ENT) == "https://w3id.org/anemia-kg/entity/" and iris.entity("anemia") == iris.ENT["anemia"]
