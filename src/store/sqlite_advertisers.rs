//! The SQLite backend, continued: advertisers and their listings.
