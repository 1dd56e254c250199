"""The project's namespace prefixes and their IRIs, as plain strings.

:mod:`anemia_kg.iris` makes rdflib namespaces of them for the build; the query workers and the SPARQL
endpoint only need the strings, and a worker that imported rdflib for them took 0.2 s longer to start (a
worker is started with the server, and again after each query it had to stop). The standard ones are
checked against rdflib's own in ``tests/test_iris.py``.
"""

from __future__ import annotations

BASE = "https://w3id.org/anemia-kg/"

PREFIX_IRIS: dict[str, str] = {
    "akg": BASE + "ontology#",
    "ent": BASE + "entity/",
    "claim": BASE + "claim/",
    "ann": BASE + "annotation/",
    "src": BASE + "source/",
    "akgg": BASE + "graph/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "dcterms": "http://purl.org/dc/terms/",
    "prov": "http://www.w3.org/ns/prov#",
    "oa": "http://www.w3.org/ns/oa#",
    "prism": "http://prismstandard.org/namespaces/basic/2.0/",
    "biolink": "https://w3id.org/biolink/vocab/",
}
