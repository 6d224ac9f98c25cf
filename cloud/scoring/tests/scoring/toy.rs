//! The hand-written toy split of the multiclass tests: the scoring crate's serving tests set a
//! model by hand from it, and smsguard-train's fitting test (which includes this file) fits one.

use smsguard_core::Label;

/// A hand-written toy split: (label, text).
pub const TOY: &[(Label, &str)] = &[
    (Label::Ham, "are we still meeting for lunch tomorrow"),
    (Label::Ham, "mum says dinner is at seven tonight"),
    (Label::Ham, "thanks for the help today see you monday"),
    (Label::Ham, "明天下午开会记得带报告"),
    (Label::Ham, "妈妈说晚上回家吃饭"),
    (Label::Ham, "can you pick up the kids after school"),
    (Label::Ad, "双十一大促全场五折起回复退订"),
    (Label::Ad, "新店开业全场五折欢迎光临回复退订"),
    (
        Label::Ad,
        "big summer sale 50% off all shoes this weekend reply stop",
    ),
    (
        Label::Ad,
        "weekend sale 50% off jackets reply stop to opt out",
    ),
    (
        Label::Fraud,
        "您的银行卡已被冻结请点击链接 http://bank-verify.example.cn 解冻",
    ),
    (
        Label::Fraud,
        "您的账户异常请点击链接 http://secure.example.cn 验证",
    ),
    (
        Label::Fraud,
        "your bank account is suspended verify now at http://login.example.top",
    ),
    (
        Label::Fraud,
        "your parcel is held pay the fee at http://parcel.example.xyz",
    ),
    (Label::Illegal, "线上赌场注册就送888元"),
    (Label::Illegal, "澳门赌场上线注册送彩金"),
    (Label::Illegal, "代开发票各类证件办理"),
    (
        Label::Spam,
        "congratulations you have won a prize call now to claim",
    ),
    (
        Label::Spam,
        "you have won a free holiday call now to claim your prize",
    ),
    (Label::Spam, "free ringtones text win to claim now"),
];

/// Index of `label` in [`Label::ALL`], the multiclass model's class order.
pub fn label_index(label: Label) -> usize {
    Label::ALL.iter().position(|l| *l == label).unwrap()
}
