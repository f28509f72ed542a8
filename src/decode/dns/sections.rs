//! The decoded sections of a DNS [`Message`] and the borrowed views they are read
//! through. The layout is chosen for the packet path (see [`Sections`]); the decoder in
//! the parent module fills it. Reading never panics and never allocates: every text is
//! taken with a checked `get`.

use super::Message;

/// The decoded sections of a [`Message`]: its questions, and the records of its Answer
/// and Authority sections, read as borrowed [`Query`] and [`Answer`] views.
///
/// # Layout
///
/// A message is built on a worker thread and freed on the output thread, once per DNS
/// packet, and each allocation costs twice there (a cross-thread free). So the sections
/// take two allocations whatever their size: one `str` with every name and rdata text
/// back to back, and one slice of fixed-size records (questions, then answers, then
/// authority records) that locate their texts in it. The decoder fills per-thread
/// buffers and copies both out at their final size, so neither ever regrows; sections
/// without any question or record allocate nothing.
///
/// Two `Sections` are equal when they read the same, wherever their texts lie.
#[derive(Clone, Default)]
pub struct Sections {
    /// Text of every name and rendered rdata, back to back.
    pub(super) text: Box<str>,
    /// The questions, then the Answer section's records, then the Authority section's.
    pub(super) records: Box<[Record]>,
    /// Index in `records` of the first answer (the number of questions).
    pub(super) answers_at: u16,
    /// Index in `records` of the first authority record.
    pub(super) authorities_at: u16,
}

/// Where one text lies in the text of [`Sections`]: bytes `start..end`. Text offsets
/// fit `u32` (see `TEXT_MAX` in the decoder).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    pub(super) start: u32,
    pub(super) end: u32,
}

/// A question (`ttl` 0, `rdata` `None`) or a resource record, its texts as [`Span`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Record {
    pub(super) name: Span,
    pub(super) rdata: Option<Span>,
    pub(super) ttl: u32,
    pub(super) rrtype: u16,
}

/// One question, borrowed from its [`Message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query<'a> {
    /// Question name (see [`Message`] for the presentation rules).
    pub rrname: &'a str,
    /// Question type (QTYPE), see [`rrtype_name`](super::rrtype_name).
    pub rrtype: u16,
}

/// One resource record of the Answer or Authority section, borrowed from its
/// [`Message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer<'a> {
    /// Owner name.
    pub rrname: &'a str,
    /// Record type, see [`rrtype_name`](super::rrtype_name).
    pub rrtype: u16,
    /// Time to live, seconds.
    pub ttl: u32,
    /// Text form of the rdata for A, AAAA (std `IpAddr` display), CNAME, NS, PTR (name),
    /// MX (exchange), SRV (target), SOA (mname), TXT (character-strings concatenated,
    /// bytes outside `0x20..=0x7E` as `\xNN`). `None` for other types or when the rdata
    /// did not decode (then [`Events::BAD_RDATA`](super::Events::BAD_RDATA) is set).
    pub rdata: Option<&'a str>,
}

impl Message {
    /// The Question section (the first [`MAX_QUESTIONS`](super::MAX_QUESTIONS)
    /// decodable questions).
    pub fn queries(&self) -> Queries<'_> {
        self.sections.queries()
    }

    /// The Answer section (the first [`MAX_RECORDS`](super::MAX_RECORDS) records with a
    /// decodable owner name).
    pub fn answers(&self) -> Answers<'_> {
        self.sections.answers()
    }

    /// The Authority section, same rules as [`Message::answers`].
    pub fn authorities(&self) -> Answers<'_> {
        self.sections.authorities()
    }
}

impl Sections {
    /// The questions.
    pub fn queries(&self) -> Queries<'_> {
        Queries {
            text: &self.text,
            records: self.slice(0, self.answers_at).iter(),
        }
    }

    /// The Answer section's records.
    pub fn answers(&self) -> Answers<'_> {
        Answers {
            text: &self.text,
            records: self.slice(self.answers_at, self.authorities_at).iter(),
        }
    }

    /// The Authority section's records.
    pub fn authorities(&self) -> Answers<'_> {
        Answers {
            text: &self.text,
            records: self.slice(self.authorities_at, u16::MAX).iter(),
        }
    }

    /// `records[start..end]`, `end` capped at the length.
    fn slice(&self, start: u16, end: u16) -> &[Record] {
        let end = usize::from(end).min(self.records.len());
        self.records
            .get(usize::from(start)..end)
            .unwrap_or_default()
    }
}

impl PartialEq for Sections {
    fn eq(&self, o: &Sections) -> bool {
        self.queries().eq(o.queries())
            && self.answers().eq(o.answers())
            && self.authorities().eq(o.authorities())
    }
}

impl Eq for Sections {}

impl std::fmt::Debug for Sections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sections")
            .field("queries", &self.queries())
            .field("answers", &self.answers())
            .field("authorities", &self.authorities())
            .finish()
    }
}

/// The text at `span` (empty if it does not lie within `text`, which decoded or built
/// sections never have).
fn span_text(text: &str, span: Span) -> &str {
    text.get(span.start as usize..span.end as usize)
        .unwrap_or_default()
}

/// The questions of a [`Message`], in wire order.
#[derive(Clone)]
pub struct Queries<'a> {
    text: &'a str,
    records: std::slice::Iter<'a, Record>,
}

impl<'a> Queries<'a> {
    fn view(&self, r: &Record) -> Query<'a> {
        Query {
            rrname: span_text(self.text, r.name),
            rrtype: r.rrtype,
        }
    }
}

impl<'a> Iterator for Queries<'a> {
    type Item = Query<'a>;

    fn next(&mut self) -> Option<Query<'a>> {
        let r = self.records.next()?;
        Some(self.view(r))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.records.size_hint()
    }
}

impl DoubleEndedIterator for Queries<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let r = self.records.next_back()?;
        Some(self.view(r))
    }
}

impl ExactSizeIterator for Queries<'_> {}
impl std::iter::FusedIterator for Queries<'_> {}

impl std::fmt::Debug for Queries<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

/// The records of one section of a [`Message`], in wire order.
#[derive(Clone)]
pub struct Answers<'a> {
    text: &'a str,
    records: std::slice::Iter<'a, Record>,
}

impl<'a> Answers<'a> {
    fn view(&self, r: &Record) -> Answer<'a> {
        Answer {
            rrname: span_text(self.text, r.name),
            rrtype: r.rrtype,
            ttl: r.ttl,
            rdata: r.rdata.map(|s| span_text(self.text, s)),
        }
    }
}

impl<'a> Iterator for Answers<'a> {
    type Item = Answer<'a>;

    fn next(&mut self) -> Option<Answer<'a>> {
        let r = self.records.next()?;
        Some(self.view(r))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.records.size_hint()
    }
}

impl DoubleEndedIterator for Answers<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let r = self.records.next_back()?;
        Some(self.view(r))
    }
}

impl ExactSizeIterator for Answers<'_> {}
impl std::iter::FusedIterator for Answers<'_> {}

impl std::fmt::Debug for Answers<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

/// Sections built by hand, for tests of the code that reads messages.
#[cfg(test)]
impl Sections {
    /// Sections holding these questions and records.
    pub(crate) fn new<'a>(
        queries: impl IntoIterator<Item = Query<'a>>,
        answers: impl IntoIterator<Item = Answer<'a>>,
        authorities: impl IntoIterator<Item = Answer<'a>>,
    ) -> Sections {
        let mut text = String::new();
        let mut push = |s: &str| {
            let start = text.len();
            text.push_str(s);
            Span {
                start: u32::try_from(start).expect("test text fits u32"),
                end: u32::try_from(text.len()).expect("test text fits u32"),
            }
        };
        let mut records = Vec::new();
        for q in queries {
            records.push(Record {
                name: push(q.rrname),
                rdata: None,
                ttl: 0,
                rrtype: q.rrtype,
            });
        }
        let mut starts = [0u16; 2];
        for (start, section) in starts.iter_mut().zip([
            answers.into_iter().collect::<Vec<_>>(),
            authorities.into_iter().collect(),
        ]) {
            *start = u16::try_from(records.len()).expect("test records fit u16");
            for a in section {
                records.push(Record {
                    name: push(a.rrname),
                    rdata: a.rdata.map(&mut push),
                    ttl: a.ttl,
                    rrtype: a.rrtype,
                });
            }
        }
        let [answers_at, authorities_at] = starts;
        Sections {
            text: text.into_boxed_str(),
            records: records.into_boxed_slice(),
            answers_at,
            authorities_at,
        }
    }
}
