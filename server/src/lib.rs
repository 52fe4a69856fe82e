//! `tandem-server` — the `tandem` binary's library: configuration and backend choice, the
//! server administrator's bootstrap token, the REST API as a [`router`], demo data, the job
//! runner and event relay ([`jobs`]), and running it all with graceful shutdown. `main.rs` is
//! only the command line.

pub mod admin;
pub mod api;
pub mod auth;
pub mod backend;
pub mod bootstrap;
pub mod demo;
pub mod error;
pub mod export;
pub mod extract;
pub mod jobs;
pub mod mail;
pub mod plugins;
pub mod portal;
pub mod runtime;
pub mod serve;
pub mod sign_in;
pub mod state;
pub mod transfer;

pub use api::router;
pub use backend::{Backend, BackendOptions, DbLocation};
pub use error::ApiError;
pub use portal::app;
pub use runtime::{SystemClock, UuidV7Ids};
pub use sign_in::SignInConfig;
pub use state::{AdminToken, AppState};
