// TEMPORARY interface stub, replaced by the real decoder.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    pub method: String,
    pub uri: String,
    pub protocol: String,
    pub host: Option<String>,
    pub user_agent: Option<String>,
    pub referer: Option<String>,
    pub content_type: Option<String>,
    pub content_length: Option<u64>,
    pub xff: Option<String>,
}
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Response {
    pub status: u16,
    pub protocol: String,
    pub content_type: Option<String>,
    pub content_length: Option<u64>,
    pub location: Option<String>,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("x")]
    NotHttp,
}
impl Error {
    pub fn reason(&self) -> &'static str {
        "not_http"
    }
}
pub enum Feed {
    Consumed(usize),
    Tunnel(usize),
    Stop(Error),
}
#[derive(Default)]
pub struct ClientParser;
impl ClientParser {
    pub fn new() -> Self {
        Self
    }
    pub fn feed(&mut self, _b: &[u8], _o: &mut Vec<Request>) -> Feed {
        Feed::Stop(Error::NotHttp)
    }
    pub fn gap(&mut self) {}
}
#[derive(Default)]
pub struct ServerParser;
impl ServerParser {
    pub fn new() -> Self {
        Self
    }
    pub fn feed(&mut self, _b: &[u8], _o: &mut Vec<Response>) -> Feed {
        Feed::Stop(Error::NotHttp)
    }
    pub fn gap(&mut self) {}
    pub fn request_method(&mut self, _m: &str) {}
}
pub fn looks_like_request(_b: &[u8]) -> bool {
    false
}
pub fn looks_like_response(_b: &[u8]) -> bool {
    false
}
