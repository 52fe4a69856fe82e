//! The storage conformance suite on SQLite.

tandem_tests::conformance_suite!(tandem_tests::backends::sqlite);
