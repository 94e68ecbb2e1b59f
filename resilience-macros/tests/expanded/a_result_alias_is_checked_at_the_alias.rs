async fn count(&self, table: &str) -> PgResult<u64> {
    let __resilience = ::resilience_core::__private::Resilient::resilience(&*self);
    let mut __run = ::resilience_core::__private::Run::method(
        __resilience,
        ::core::option::Option::None,
        ::core::option::Option::None,
        "count_rows",
    );
    let __run = {
        #[allow(unused_imports)]
        use ::resilience_core::__private::{CheckedRun as _, UncheckedRun as _};
        (&::resilience_core::__private::Check::<PgResult<u64>>::new()).run(&mut __run)
    };
    loop {
        if let ::core::option::Option::Some(__done) = __run
            .step::<PgResult<u64>, _>(async { self.query_scalar(table).await })
            .await
        {
            return __done;
        }
    }
}
