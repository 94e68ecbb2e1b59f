#[automatically_derived]
impl facade::resilience::ResilientError for ApiError {
    fn class(&self) -> facade::resilience::ErrorClass {
        match self {
            Self::Status { code: field } => status_class(field),
            Self::Gave { up: field } => field.class(),
        }
    }
    fn from_failure(failure: facade::resilience::Failure<Self>) -> Self {
        Self::Gave {
            up: ::core::convert::From::from(failure),
        }
    }
}
