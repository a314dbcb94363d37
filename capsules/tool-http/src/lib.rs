//! The `http_fetch` tool: GET or HEAD a URL through the kernel's network airlock and show the
//! model the status, content type and (bounded) body as text.
#![forbid(unsafe_code)]

mod format;

use astrid_sdk::http::Request;
use astrid_sdk::prelude::*;

/// The whole exchange's time limit asked of the host.
const TIMEOUT_MS: u32 = 30_000;

#[derive(Default)]
struct ToolHttp;

#[derive(Serialize)]
struct Reply {
    output: String,
}

#[derive(Deserialize)]
struct FetchArgs {
    url: String,
    method: Option<String>,
    max_bytes: Option<u64>,
}

#[capsule]
impl ToolHttp {
    #[astrid::tool]
    fn http_fetch(&self, args: FetchArgs) -> Result<Reply, CapsuleError> {
        let url = args.url.trim();
        let fail = |why: String| CapsuleError::Failed(format!("cannot fetch {url}: {why}"));
        let method = format::method(args.method.as_deref()).map_err(fail)?;
        format::check_url(url).map_err(fail)?;
        let max_bytes = format::max_bytes(args.max_bytes);

        let mut resp = Request::new(method, url)
            .timeout_ms(TIMEOUT_MS)
            .send()
            .map_err(|e| fail(e.to_string()))?;
        let mut body = format::Collector::new(max_bytes);
        if method != "HEAD" {
            loop {
                let want = body.want();
                if want == 0 {
                    break;
                }
                match resp
                    .read_chunk(want)
                    .map_err(|e| fail(format!("reading the body: {e}")))?
                {
                    Some(chunk) => body.push(&chunk),
                    None => break,
                }
            }
        }
        let output = format::describe(&format::Fetched {
            method,
            status: resp.status,
            final_url: &resp.final_url,
            content_type: resp.header("content-type"),
            body: &body.body,
            truncated: body.truncated,
            max_bytes,
        });
        Ok(Reply { output })
    }
}
