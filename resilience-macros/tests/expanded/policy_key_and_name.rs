async fn fetch_page(&self, table: &Table, after: Option<&Key>) -> Result<Page, PgError> {
    const _: ::core::option::Option<&str> = ::core::option_env!("RESILIENCE_POLICY_DIR");
    const _: &[u8] = ::core::include_bytes!("/policies/default.toml");
    const _: &[u8] = ::core::include_bytes!("/policies/prod.toml");
    let __resilience = ::resilience_core::__private::Resilient::resilience(&*self);
    let __key = self.host_key();
    let mut __run = ::resilience_core::__private::Run::method(
        __resilience,
        ::core::option::Option::Some("db"),
        ::core::option::Option::Some(::core::convert::AsRef::<str>::as_ref(&__key)),
        "fetch_page",
    );
    let __run = {
        #[allow(unused_imports)]
        use ::resilience_core::__private::{CheckedRun as _, UncheckedRun as _};
        (&::resilience_core::__private::Check::<Result<Page, PgError>>::new())
            .run(&mut __run)
    };
    loop {
        if let ::core::option::Option::Some(__done) = __run
            .step::<
                Result<Page, PgError>,
                _,
            >(async {
                if table.is_empty() {
                    return Ok(Page::default());
                }
                self.query(table, after).await
            })
            .await
        {
            return __done;
        }
    }
}
