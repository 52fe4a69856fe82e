//! Shared fixtures for Tandem's end-to-end scenarios and the storage conformance suite.
