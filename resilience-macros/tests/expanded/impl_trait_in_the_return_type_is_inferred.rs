async fn rows(&self) -> Result<impl Iterator<Item = Row>, Error> {
    let __resilience = ::resilience_core::__private::Resilient::resilience(&*self);
    let mut __run = ::resilience_core::__private::Run::method(
        __resilience,
        ::core::option::Option::None,
        ::core::option::Option::None,
        "rows",
    );
    let __run = {
        #[allow(unused_imports)]
        use ::resilience_core::__private::{CheckedRun as _, UncheckedRun as _};
        (&::resilience_core::__private::Check::<Result<(), Error>>::new())
            .run(&mut __run)
    };
    loop {
        if let ::core::option::Option::Some(__done) = __run
            .step::<Result<_, Error>, _>(async { Ok(self.rows.iter().cloned()) })
            .await
        {
            return __done;
        }
    }
}
