async fn list_orders(client: &Client, page: u32) -> Result<Vec<Order>, ApiError> {
    const _: ::core::option::Option<&str> = ::core::option_env!("RESILIENCE_POLICY_DIR");
    const _: &[u8] = ::core::include_bytes!("/policies/default.toml");
    const _: &[u8] = ::core::include_bytes!("/policies/prod.toml");
    let __key = "orders.example.com";
    let mut __run = ::resilience_core::__private::Run::global(
        "api",
        ::core::option::Option::Some(::core::convert::AsRef::<str>::as_ref(&__key)),
        "list_orders",
    );
    let __run = {
        #[allow(unused_imports)]
        use ::resilience_core::__private::{CheckedRun as _, UncheckedRun as _};
        (&::resilience_core::__private::Check::<Result<Vec<Order>, ApiError>>::new())
            .run(&mut __run)
    };
    loop {
        if let ::core::option::Option::Some(__done) = __run
            .step::<Result<Vec<Order>, ApiError>, _>(async { client.get(page).await })
            .await
        {
            return __done;
        }
    }
}
