//! The storage conformance suite on PostgreSQL: a fresh database per test on the server named by
//! `TANDEM_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`).

tandem_tests::conformance_suite!(tandem_tests::backends::postgres);
