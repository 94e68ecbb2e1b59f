#[inline]
///Reads a page.
async fn read(&self, cursor: Option<&Cursor>) -> Result<Self::Page, Self::Error> {
    let __resilience = ::resilience_core::__private::Resilient::resilience(&*self);
    let mut __run = ::resilience_core::__private::Run::method(
        __resilience,
        ::core::option::Option::None,
        ::core::option::Option::None,
        "source.read",
    );
    let __run = {
        #[allow(unused_imports)]
        use ::resilience_core::__private::{CheckedRun as _, UncheckedRun as _};
        (&::resilience_core::__private::Check::<Result<Self::Page, Self::Error>>::new())
            .run(&mut __run)
    };
    loop {
        if let ::core::option::Option::Some(__done) = __run
            .step::<
                Result<Self::Page, Self::Error>,
                _,
            >(async { Ok(self.page(cursor).await?) })
            .await
        {
            return __done;
        }
    }
}
