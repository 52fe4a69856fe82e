//! Desk scenarios on SQLite.

tandem_tests::scenario_suite!(tandem_tests::backends::sqlite);
