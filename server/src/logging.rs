//! Logging setup: human-readable or JSON lines, each carrying the node id.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{DefaultFields, Format, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Prefixes the default text format with `node=N`.
struct TextWithNode {
    node: u64,
    inner: Format,
}

impl<S, N> FormatEvent<S, N> for TextWithNode
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "node={} ", self.node)?;
        self.inner.format_event(ctx, writer, event)
    }
}

/// One JSON object per line: time, level, target, node id, message, fields.
struct JsonWithNode {
    node: u64,
}

struct JsonVisitor(serde_json::Map<String, serde_json::Value>);

impl Visit for JsonVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }
}

impl<S, N> FormatEvent<S, N> for JsonWithNode
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut visitor = JsonVisitor(serde_json::Map::new());
        event.record(&mut visitor);
        let meta = event.metadata();
        let mut line = serde_json::Map::new();
        let ts_ms = raftlimit_raft::node::wall_clock_ns() / 1_000_000;
        line.insert("ts_ms".into(), ts_ms.into());
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        line.insert("node_id".into(), self.node.into());
        for (key, value) in visitor.0 {
            line.insert(key, value);
        }
        writeln!(writer, "{}", serde_json::Value::Object(line))
    }
}

/// Installs the global subscriber. Later calls (in-process test nodes) are no-ops.
pub fn init(format: LogFormat, filter: &str, node: u64) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .fmt_fields(DefaultFields::new());
    let result = match format {
        LogFormat::Text => builder
            .event_format(TextWithNode {
                node,
                inner: Format::default(),
            })
            .try_init(),
        LogFormat::Json => builder.event_format(JsonWithNode { node }).try_init(),
    };
    let _ = result;
}
