//! Topic names. Every name takes the environment suffix (`--topic-suffix .dev`:
//! `position.updated.v1.dev`); schemas are found by the base name.

/// An input topic the consumers read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputTopic {
    /// `user.created.v1`
    UserCreated,
    /// `user.updated.v1`
    UserUpdated,
    /// `user.verified.v1`
    UserVerified,
    /// `user.kyc.updated.v1`
    UserKycUpdated,
    /// `user.frozen.v1`
    UserFrozen,
    /// `user.unfrozen.v1`
    UserUnfrozen,
    /// `position.updated.v1`
    PositionUpdated,
    /// `position.closed.v1`
    PositionClosed,
    /// `risk.exposure.v2`
    RiskExposure,
    /// `order.command.v1`
    OrderCommand,
    /// `engine.event.v1`
    EngineEvent,
    /// `wallet.balance_changed.v1`
    WalletBalanceChanged,
    /// `md.instrument.created.v1`
    InstrumentCreated,
    /// `md.instrument.updated.v1`
    InstrumentUpdated,
    /// `md.mark.v1` (its own reader, so marks never queue behind account events)
    Mark,
}

impl InputTopic {
    /// The topics of the state consumer group, in the order the feed writes them.
    pub const STATE: [Self; 14] = [
        Self::InstrumentCreated,
        Self::InstrumentUpdated,
        Self::UserCreated,
        Self::UserUpdated,
        Self::UserVerified,
        Self::UserKycUpdated,
        Self::UserFrozen,
        Self::UserUnfrozen,
        Self::RiskExposure,
        Self::WalletBalanceChanged,
        Self::PositionUpdated,
        Self::PositionClosed,
        Self::OrderCommand,
        Self::EngineEvent,
    ];

    /// The name without the environment suffix (also the schema's file name).
    #[must_use]
    pub const fn base(self) -> &'static str {
        match self {
            Self::UserCreated => "user.created.v1",
            Self::UserUpdated => "user.updated.v1",
            Self::UserVerified => "user.verified.v1",
            Self::UserKycUpdated => "user.kyc.updated.v1",
            Self::UserFrozen => "user.frozen.v1",
            Self::UserUnfrozen => "user.unfrozen.v1",
            Self::PositionUpdated => "position.updated.v1",
            Self::PositionClosed => "position.closed.v1",
            Self::RiskExposure => "risk.exposure.v2",
            Self::OrderCommand => "order.command.v1",
            Self::EngineEvent => "engine.event.v1",
            Self::WalletBalanceChanged => "wallet.balance_changed.v1",
            Self::InstrumentCreated => "md.instrument.created.v1",
            Self::InstrumentUpdated => "md.instrument.updated.v1",
            Self::Mark => "md.mark.v1",
        }
    }
}

/// An output topic the producers write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputTopic {
    /// `risk.pretrade_decision.v1`: every decision.
    Decision,
    /// `risk.exposure_snapshot.v1`: projected figures of a priced check.
    ExposureSnapshot,
    /// `risk.violation.v1`: a REJECT or WARN rule fired.
    Violation,
    /// `risk.margin_call.v1`
    MarginCall,
    /// `risk.liquidation.v1`
    Liquidation,
    /// `risk.dlq.v1`: input messages that could not be applied (the original bytes).
    DeadLetter,
}

impl OutputTopic {
    /// Every output topic.
    pub const ALL: [Self; 6] = [
        Self::Decision,
        Self::ExposureSnapshot,
        Self::Violation,
        Self::MarginCall,
        Self::Liquidation,
        Self::DeadLetter,
    ];

    /// The name without the environment suffix.
    #[must_use]
    pub const fn base(self) -> &'static str {
        match self {
            Self::Decision => "risk.pretrade_decision.v1",
            Self::ExposureSnapshot => "risk.exposure_snapshot.v1",
            Self::Violation => "risk.violation.v1",
            Self::MarginCall => "risk.margin_call.v1",
            Self::Liquidation => "risk.liquidation.v1",
            Self::DeadLetter => "risk.dlq.v1",
        }
    }
}

/// Topic names with an environment suffix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topics {
    suffix: String,
}

impl Topics {
    /// Names ending in `suffix` (empty: the base names).
    #[must_use]
    pub fn new(suffix: &str) -> Self {
        Self {
            suffix: suffix.to_owned(),
        }
    }

    /// The full name of an input topic.
    #[must_use]
    pub fn input(&self, topic: InputTopic) -> String {
        format!("{}{}", topic.base(), self.suffix)
    }

    /// The full name of an output topic.
    #[must_use]
    pub fn output(&self, topic: OutputTopic) -> String {
        format!("{}{}", topic.base(), self.suffix)
    }

    /// The input topic a full name denotes.
    #[must_use]
    pub fn parse_input(&self, name: &str) -> Option<InputTopic> {
        let base = name.strip_suffix(self.suffix.as_str())?;
        InputTopic::STATE
            .into_iter()
            .chain([InputTopic::Mark])
            .find(|t| t.base() == base)
    }

    /// Every topic name, inputs and outputs.
    #[must_use]
    pub fn all(&self) -> Vec<String> {
        InputTopic::STATE
            .into_iter()
            .chain([InputTopic::Mark])
            .map(|t| self.input(t))
            .chain(OutputTopic::ALL.into_iter().map(|t| self.output(t)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_round_trips_and_every_input_has_a_schema() {
        let topics = Topics::new(".dev");
        for t in InputTopic::STATE.into_iter().chain([InputTopic::Mark]) {
            assert_eq!(topics.parse_input(&topics.input(t)), Some(t));
            assert!(super::super::avro::schema(t.base()).is_ok(), "{}", t.base());
        }
        assert_eq!(topics.parse_input("position.updated.v1"), None);
        assert_eq!(topics.all().len(), 21);
    }
}
