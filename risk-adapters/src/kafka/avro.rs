//! The Avro schemas of every topic (`risk-adapters/schemas/<topic>.avsc`, compiled in),
//! Avro single-object encoding for the producers, and the decoder the consumers use:
//! Avro single-object or JSON with the same field names.
//!
//! Single-object encoding (Avro specification 1.11, "Single object encoding"): the two
//! marker bytes `C3 01`, the schema's 8-byte CRC-64-AVRO (Rabin) fingerprint, little
//! endian, then the Avro binary body. The fingerprint is the crate's
//! ([`Schema::fingerprint`] over [`apache_avro::rabin::Rabin`]).

use std::collections::HashMap;
use std::sync::OnceLock;

use apache_avro::rabin::Rabin;
use apache_avro::types::Value;
use apache_avro::Schema;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The two marker bytes that open a single-object encoded message.
pub const SINGLE_OBJECT_MARKER: [u8; 2] = [0xC3, 0x01];

/// Every topic's schema text, by the topic's base name (without environment suffix).
pub const SCHEMA_FILES: &[(&str, &str)] = &[
    (
        "user.created.v1",
        include_str!("../../schemas/user.created.v1.avsc"),
    ),
    (
        "user.updated.v1",
        include_str!("../../schemas/user.updated.v1.avsc"),
    ),
    (
        "user.verified.v1",
        include_str!("../../schemas/user.verified.v1.avsc"),
    ),
    (
        "user.kyc.updated.v1",
        include_str!("../../schemas/user.kyc.updated.v1.avsc"),
    ),
    (
        "user.frozen.v1",
        include_str!("../../schemas/user.frozen.v1.avsc"),
    ),
    (
        "user.unfrozen.v1",
        include_str!("../../schemas/user.unfrozen.v1.avsc"),
    ),
    (
        "position.updated.v1",
        include_str!("../../schemas/position.updated.v1.avsc"),
    ),
    (
        "position.closed.v1",
        include_str!("../../schemas/position.closed.v1.avsc"),
    ),
    (
        "risk.exposure.v2",
        include_str!("../../schemas/risk.exposure.v2.avsc"),
    ),
    (
        "order.command.v1",
        include_str!("../../schemas/order.command.v1.avsc"),
    ),
    (
        "engine.event.v1",
        include_str!("../../schemas/engine.event.v1.avsc"),
    ),
    (
        "wallet.balance_changed.v1",
        include_str!("../../schemas/wallet.balance_changed.v1.avsc"),
    ),
    (
        "md.instrument.created.v1",
        include_str!("../../schemas/md.instrument.created.v1.avsc"),
    ),
    (
        "md.instrument.updated.v1",
        include_str!("../../schemas/md.instrument.updated.v1.avsc"),
    ),
    ("md.mark.v1", include_str!("../../schemas/md.mark.v1.avsc")),
    (
        "risk.pretrade_decision.v1",
        include_str!("../../schemas/risk.pretrade_decision.v1.avsc"),
    ),
    (
        "risk.exposure_snapshot.v1",
        include_str!("../../schemas/risk.exposure_snapshot.v1.avsc"),
    ),
    (
        "risk.violation.v1",
        include_str!("../../schemas/risk.violation.v1.avsc"),
    ),
    (
        "risk.margin_call.v1",
        include_str!("../../schemas/risk.margin_call.v1.avsc"),
    ),
    (
        "risk.liquidation.v1",
        include_str!("../../schemas/risk.liquidation.v1.avsc"),
    ),
];

/// A payload that could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AvroError {
    /// No schema is known for the topic.
    #[error("no schema for topic `{0}`")]
    UnknownTopic(String),
    /// A compiled-in schema does not parse (a bug caught by the unit tests).
    #[error("schema of `{topic}` does not parse: {source}")]
    Schema {
        /// The topic.
        topic: &'static str,
        /// Why.
        source: Box<apache_avro::Error>,
    },
    /// A single-object message whose fingerprint is not the topic's schema.
    #[error("Avro fingerprint {found:016x} is not the schema of `{topic}` ({expected:016x})")]
    Fingerprint {
        /// The topic.
        topic: String,
        /// The fingerprint in the message.
        found: u64,
        /// The topic schema's fingerprint.
        expected: u64,
    },
    /// The Avro body does not decode, or does not match the payload's fields.
    #[error("Avro body of a `{topic}` message: {source}")]
    Avro {
        /// The topic.
        topic: String,
        /// Why.
        source: Box<apache_avro::Error>,
    },
    /// The JSON payload (or the Avro record) does not parse or lacks a field.
    #[error("fields of a `{topic}` message: {source}")]
    Json {
        /// The topic.
        topic: String,
        /// Why.
        source: serde_json::Error,
    },
    /// Neither Avro single-object (`C3 01`) nor a JSON object (`{`).
    #[error(
        "payload of a `{topic}` message is neither Avro single-object (C3 01) nor a JSON object"
    )]
    Format {
        /// The topic.
        topic: String,
    },
    /// An empty payload (a tombstone) where an event was expected.
    #[error("empty payload on `{0}`")]
    Empty(String),
}

/// One topic's parsed schema and its single-object header.
#[derive(Debug)]
pub struct TopicSchema {
    /// The parsed schema.
    pub schema: Schema,
    /// The CRC-64-AVRO (Rabin) fingerprint of its canonical form.
    pub fingerprint: u64,
    /// `C3 01` followed by the fingerprint, little endian.
    pub header: [u8; 10],
}

type Registry = HashMap<&'static str, TopicSchema>;

fn registry() -> Result<&'static Registry, AvroError> {
    static REGISTRY: OnceLock<Result<Registry, String>> = OnceLock::new();
    let built = REGISTRY.get_or_init(|| {
        let mut map = HashMap::new();
        for (topic, text) in SCHEMA_FILES {
            let schema = Schema::parse_str(text).map_err(|e| format!("{topic}: {e}"))?;
            let bytes = schema.fingerprint::<Rabin>().bytes;
            let mut le = [0u8; 8];
            for (slot, b) in le.iter_mut().zip(bytes.iter()) {
                *slot = *b;
            }
            let fingerprint = u64::from_le_bytes(le);
            let mut header = [0u8; 10];
            header[..2].copy_from_slice(&SINGLE_OBJECT_MARKER);
            header[2..].copy_from_slice(&le);
            map.insert(
                *topic,
                TopicSchema {
                    schema,
                    fingerprint,
                    header,
                },
            );
        }
        Ok(map)
    });
    built
        .as_ref()
        .map_err(|e| AvroError::UnknownTopic(e.clone()))
}

/// The schema of `topic` (its base name, without environment suffix).
///
/// # Errors
/// [`AvroError::UnknownTopic`] when the topic has no schema.
pub fn schema(topic: &str) -> Result<&'static TopicSchema, AvroError> {
    registry()?
        .get(topic)
        .ok_or_else(|| AvroError::UnknownTopic(topic.to_owned()))
}

/// Encodes `value` with the schema of `topic` in Avro single-object encoding.
///
/// # Errors
/// [`AvroError`] when the value does not fit the schema.
pub fn encode<T: Serialize>(topic: &str, value: &T) -> Result<Vec<u8>, AvroError> {
    let schema = schema(topic)?;
    let avro = |source: apache_avro::Error| AvroError::Avro {
        topic: topic.to_owned(),
        source: Box::new(source),
    };
    let value = apache_avro::to_value(value)
        .and_then(|v| v.resolve(&schema.schema))
        .map_err(avro)?;
    let body = apache_avro::to_avro_datum(&schema.schema, value).map_err(avro)?;
    let mut out = Vec::with_capacity(schema.header.len() + body.len());
    out.extend_from_slice(&schema.header);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes a payload of `topic` into `T`: Avro single-object encoding (checked against the
/// topic's schema fingerprint) or a JSON object with the same field names.
///
/// # Errors
/// [`AvroError`] naming the topic and what is wrong.
pub fn decode<T: DeserializeOwned>(topic: &str, payload: &[u8]) -> Result<T, AvroError> {
    match payload {
        [] => Err(AvroError::Empty(topic.to_owned())),
        [0xC3, 0x01, rest @ ..] => {
            let schema = schema(topic)?;
            let (fp, mut body) = rest.split_at(rest.len().min(8));
            let mut le = [0u8; 8];
            le[..fp.len()].copy_from_slice(fp);
            let found = u64::from_le_bytes(le);
            if fp.len() < 8 || found != schema.fingerprint {
                return Err(AvroError::Fingerprint {
                    topic: topic.to_owned(),
                    found,
                    expected: schema.fingerprint,
                });
            }
            let avro = |source: apache_avro::Error| AvroError::Avro {
                topic: topic.to_owned(),
                source: Box::new(source),
            };
            let value: Value =
                apache_avro::from_avro_datum(&schema.schema, &mut body, None).map_err(avro)?;
            if !body.is_empty() {
                return Err(AvroError::Format {
                    topic: topic.to_owned(),
                });
            }
            // Through JSON, so that the consumers' payload types read Avro and JSON alike:
            // an optional field may be a union in one topic's schema and plain in another's.
            let json = serde_json::Value::try_from(value).map_err(avro)?;
            serde_json::from_value(json).map_err(|source| AvroError::Json {
                topic: topic.to_owned(),
                source,
            })
        }
        _ if payload
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'{') =>
        {
            serde_json::from_slice(payload).map_err(|source| AvroError::Json {
                topic: topic.to_owned(),
                source,
            })
        }
        _ => Err(AvroError::Format {
            topic: topic.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_parses_and_has_a_distinct_fingerprint() {
        let mut seen = std::collections::HashSet::new();
        for (topic, _) in SCHEMA_FILES {
            let s = schema(topic).expect("schema parses");
            assert_eq!(s.header[..2], SINGLE_OBJECT_MARKER);
            assert!(seen.insert(s.fingerprint), "{topic} shares a fingerprint");
        }
        assert_eq!(seen.len(), 20);
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Mark {
        symbol: String,
        price: String,
        ts_ms: i64,
    }

    #[test]
    fn avro_and_json_decode_to_the_same_value() {
        let mark = Mark {
            symbol: "BTCUSDT".into(),
            price: "50000.5".into(),
            ts_ms: 1_700_000_000_000,
        };
        let avro = encode("md.mark.v1", &mark).expect("encodes");
        assert_eq!(avro[..10], schema("md.mark.v1").expect("schema").header);
        let from_avro: Mark = decode("md.mark.v1", &avro).expect("avro decodes");
        let json = br#" {"symbol":"BTCUSDT","price":"50000.5","ts_ms":1700000000000}"#;
        let from_json: Mark = decode("md.mark.v1", json).expect("json decodes");
        assert_eq!(from_avro, mark);
        assert_eq!(from_json, mark);
    }

    #[test]
    fn wrong_fingerprint_garbage_and_truncation_are_named_errors() {
        let mark = Mark {
            symbol: "X".into(),
            price: "1".into(),
            ts_ms: 1,
        };
        let mut avro = encode("md.mark.v1", &mark).expect("encodes");
        let other = decode::<Mark>("position.closed.v1", &avro).expect_err("wrong schema");
        assert!(matches!(other, AvroError::Fingerprint { .. }), "{other}");
        avro.truncate(avro.len() - 2);
        let short = decode::<Mark>("md.mark.v1", &avro).expect_err("truncated");
        assert!(matches!(short, AvroError::Avro { .. }), "{short}");
        let garbage = decode::<Mark>("md.mark.v1", b"\x00\xffgarbage").expect_err("garbage");
        assert!(matches!(garbage, AvroError::Format { .. }), "{garbage}");
        let missing = decode::<Mark>("md.mark.v1", br#"{"symbol":"X"}"#).expect_err("missing");
        assert!(missing.to_string().contains("price"), "{missing}");
        assert!(matches!(
            decode::<Mark>("md.mark.v1", b""),
            Err(AvroError::Empty(_))
        ));
    }
}
