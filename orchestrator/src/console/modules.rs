//! `/ui/t/{tenant}/modules`: the tenant's UDF modules and their versions.

use axum::extract::{Path, Query, State};
use maud::html;

use super::{clip, label, listing, tenant, when, ConsoleError, Page, PageQuery};
use crate::api::{modules, ApiState};

pub async fn list(
    State(s): State<ApiState>,
    Path(t): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Page, ConsoleError> {
    let t = tenant(&t)?;
    let all = modules::all(&s, &t).await?;
    let empty = html! { "No module uploaded yet (" code { "weir udf upload" } ")." };
    Ok(listing(&t, "Modules", &all, q, "/modules", empty, |rows| {
        html! {
            @for m in rows {
                h2 id=(format!("module-{}", m.name)) { (m.name) }
                table {
                    tr { th { "version" } th { "kind" } th { "interface" } th { "digest" } th { "size" } th { "SDK" } th { "uploaded" } }
                    @for v in m.versions.iter().rev() {
                        tr {
                            td { (v.version) @if m.latest.as_deref() == Some(v.version.as_str()) { " (latest)" } }
                            td { (label(&v.module.module_kind)) }
                            td.mono { (v.module.interface) }
                            td.mono title=(v.module.digest) { (clip(&v.module.digest, 19)) }
                            td.num { (v.module.size) " B" }
                            td { (v.module.sdk_version) }
                            td { (when(&v.module.uploaded_at)) " by " (v.module.uploader) }
                        }
                    }
                }
            }
        }
    }))
}
