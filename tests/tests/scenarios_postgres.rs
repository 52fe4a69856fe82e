//! Desk scenarios on PostgreSQL (a fresh database per test; see `backends::postgres`).

tandem_tests::scenario_suite!(tandem_tests::backends::postgres);
