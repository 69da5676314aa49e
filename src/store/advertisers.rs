//! Advertisers of a portal source (Grupo ZAP): the store contract.
