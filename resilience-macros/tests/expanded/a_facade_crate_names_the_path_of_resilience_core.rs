async fn load(table: &str) -> Result<u64, LoadError> {
    const _: ::core::option::Option<&str> = ::core::option_env!("RESILIENCE_POLICY_DIR");
    const _: &[u8] = ::core::include_bytes!("/policies/default.toml");
    const _: &[u8] = ::core::include_bytes!("/policies/prod.toml");
    let mut __run = my_facade::resilience::__private::Run::global(
        "db",
        ::core::option::Option::None,
        "load",
    );
    let __run = {
        #[allow(unused_imports)]
        use my_facade::resilience::__private::{CheckedRun as _, UncheckedRun as _};
        (&my_facade::resilience::__private::Check::<Result<u64, LoadError>>::new())
            .run(&mut __run)
    };
    loop {
        if let ::core::option::Option::Some(__done) = __run
            .step::<Result<u64, LoadError>, _>(async { Ok(table.len() as u64) })
            .await
        {
            return __done;
        }
    }
}
