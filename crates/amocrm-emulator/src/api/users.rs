//! The account's users: `GET /api/v4/users`, paged like every list.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use serde_json::Value;

use super::{Base, ListQuery, page_of};
use crate::Shared;
use crate::problem::Problem;

/// Every token works with the administrator's rights here, so the list is never refused with
/// the 403 amoCRM gives a user who is not an administrator.
pub async fn list(
    State(shared): State<Arc<Shared>>,
    Base(base): Base,
    Query(query): Query<ListQuery>,
) -> Result<Response, Problem> {
    let state = shared.lock();
    let users: Vec<Value> =
        state.crm.users.iter().enumerate().map(|(index, user)| super::hal::user(&base, user, index == 0)).collect();
    page_of(&query, &base, "/api/v4/users", "users", users)
}
