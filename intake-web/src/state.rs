//! What every page handler shares.

use tandem_core::Desk;

#[derive(Debug, Clone)]
pub struct WebState {
    pub desk: Desk,
}
