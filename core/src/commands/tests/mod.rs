//! Table tests for every command's `decide`. `decide` is pure, so each row is a hand-built state
//! (the [`fixture::World`]), an actor and an input, and the expected outcome: which records are
//! written at which versions and which events are emitted, or which error and why.

mod fixture;

mod access;
mod automation;
mod conversation;
mod items;
mod notify;
mod people;
mod planning;
mod sign_in;
mod structure;
mod types;
mod web;
mod webhooks;
