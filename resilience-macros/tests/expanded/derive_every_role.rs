#[automatically_derived]
impl<T: Clone> ::resilience_core::ResilientError for PgError<T> {
    fn class(&self) -> ::resilience_core::ErrorClass {
        match self {
            Self::Driver(field) => crate::classify::classify(field),
            Self::Timeout { .. } => ::resilience_core::ErrorClass::Timeout,
            Self::Unknown { .. } => ::resilience_core::ErrorClass::InvalidInput,
            Self::NotConfigured { .. } => ::resilience_core::ErrorClass::Config,
            Self::Stopped(field) => field.class(),
        }
    }
    fn from_failure(failure: ::resilience_core::Failure<Self>) -> Self {
        Self::Stopped(::core::convert::From::from(failure))
    }
}
