//! Shared fixtures for Tandem's end-to-end scenarios and the storage conformance suite.
//!
//! - [`conformance`]: every storage behaviour written once, generic over [`Store`], stamped out per
//!   backend by [`conformance_suite!`] so both backends run every case.
//! - [`fixture`]: records and change sets for storage-level tests.
//! - [`backends`]: how each backend's test store is made (and when it may be skipped).
//! - [`browser`]: a real headless Chromium over WebDriver for page tests, and screenshots as artefacts.
//! - [`peers`]: a throwaway certificate authority and child processes killed with the test.
//! - [`scenarios`]: end-to-end flows through `Desk`, run on every backend.

// Test support code: a failed unwrap is a failed test, which is the point.
#![allow(clippy::unwrap_used)]

pub mod backends;
pub mod browser;
pub mod conformance;
pub mod conformance_access;
pub mod conformance_kb;
pub mod conformance_plugins;
pub mod fixture;
pub mod peers;
pub mod scenarios;

use std::sync::Arc;

use tandem_core::Store;

/// A fresh, empty store of some backend for one test.
pub type TestStore = Arc<dyn Store>;
