/// Checks the connection.
#[allow(clippy::needless_return)]
pub async fn test_connection(&self) -> Result<Info, PgError> {
    let __resilience = ::resilience_core::__private::Resilient::resilience(&*self);
    let mut __run = ::resilience_core::__private::Run::method(
        __resilience,
        ::core::option::Option::None,
        ::core::option::Option::None,
        "test_connection",
    );
    let __run = {
        #[allow(unused_imports)]
        use ::resilience_core::__private::{CheckedRun as _, UncheckedRun as _};
        (&::resilience_core::__private::Check::<Result<Info, PgError>>::new())
            .run(&mut __run)
    };
    loop {
        if let ::core::option::Option::Some(__done) = __run
            .step::<
                Result<Info, PgError>,
                _,
            >(async {
                self.client.ping().await?;
                Ok(Info)
            })
            .await
        {
            return __done;
        }
    }
}
