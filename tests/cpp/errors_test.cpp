// The kinds of mthread::error: which call throws which, what their messages say, and that a
// caller catching mthread::error still catches every one.
#include <atomic>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>

#include "test_util.hpp"

using namespace std::chrono_literals;

namespace {

class Errors : public mt_test::MthreadTest {};

// What `call` threw, caught as mthread::error; fails the test if it threw nothing or another
// type.
template <class Call>
std::exception_ptr thrown_by(Call&& call) {
  try {
    call();
  } catch (const mthread::error&) {
    return std::current_exception();
  }
  ADD_FAILURE() << "no mthread::error thrown";
  return nullptr;
}

template <class Kind>
bool is(const std::exception_ptr& thrown) {
  try {
    std::rethrow_exception(thrown);
  } catch (const Kind&) {
    return true;
  } catch (...) {
    return false;
  }
}

std::string argument_of(const std::exception_ptr& thrown) {
  try {
    std::rethrow_exception(thrown);
  } catch (const mthread::invalid_argument& e) {
    return std::string(e.argument());
  } catch (...) {
    return "(not an invalid_argument)";
  }
}

TEST_F(Errors, EveryKindIsAnMthreadError) {
  static_assert(std::is_base_of_v<mthread::error, mthread::invalid_argument>);
  static_assert(std::is_base_of_v<mthread::invalid_argument, mthread::out_of_range>);
  static_assert(std::is_base_of_v<mthread::error, mthread::wrong_thread>);
  static_assert(std::is_base_of_v<std::runtime_error, mthread::error>);
  // Not the standard library's kinds: catching std::invalid_argument catches none of mthread's.
  static_assert(!std::is_base_of_v<std::invalid_argument, mthread::invalid_argument>);
}

TEST_F(Errors, MessageNamesTheFunctionThenTheArgument) {
  const mthread::invalid_argument e("notify", "value", "must be in 1..4294967295, got 0");
  EXPECT_STREQ(e.what(), "mthread::notify: value must be in 1..4294967295, got 0");
  EXPECT_STREQ(e.detail(), "value must be in 1..4294967295, got 0");
  EXPECT_EQ(e.argument(), "value");
  const mthread::invalid_argument copy = e;  // the parts point into the copy's own message
  EXPECT_STREQ(copy.detail(), "value must be in 1..4294967295, got 0");
  EXPECT_EQ(copy.argument(), "value");
  // An error made from one string has no function to take away.
  const mthread::error plain("mthread: cannot start thread");
  EXPECT_STREQ(plain.detail(), plain.what());
}

TEST_F(Errors, NotifyZeroIsAnInvalidValue) {
  const auto thrown = thrown_by([] { mthread::notify(mthread::get_repl_id(), 0); });
  EXPECT_TRUE(is<mthread::invalid_argument>(thrown));
  EXPECT_FALSE(is<mthread::out_of_range>(thrown));
  EXPECT_EQ(argument_of(thrown), "value");
}

TEST_F(Errors, EmptyAndTooLongTextsAreInvalidMessages) {
  const auto self = mthread::get_repl_id();
  const auto empty = thrown_by([&] { mthread::send_msg(self, std::string_view{}); });
  EXPECT_TRUE(is<mthread::invalid_argument>(empty));
  EXPECT_FALSE(is<mthread::out_of_range>(empty));
  EXPECT_EQ(argument_of(empty), "msg");
  const std::string too_long(mthread::max_message_length + 1, 'x');
  const auto long_one = thrown_by([&] { mthread::send_msg(self, too_long); });
  EXPECT_TRUE(is<mthread::invalid_argument>(long_one));
  EXPECT_FALSE(is<mthread::out_of_range>(long_one)) << "a length, not a number too large";
  EXPECT_EQ(argument_of(long_one), "msg");
  EXPECT_EQ(mthread::get_msg().type, mthread::msg_type::none);
}

TEST_F(Errors, MailboxDepthZeroIsInvalidAndAboveTheMaximumOutOfRange) {
  mthread::start_options zero;
  zero.mailbox_depth = 0;
  const auto none = thrown_by([&] { mthread::start_new_thread(zero, "bad", [] {}); });
  EXPECT_TRUE(is<mthread::invalid_argument>(none));
  EXPECT_FALSE(is<mthread::out_of_range>(none));
  EXPECT_EQ(argument_of(none), "mailbox_depth");
  mthread::start_options deep;
  deep.mailbox_depth = mthread::max_mailbox_depth + 1;
  const auto too_deep = thrown_by([&] { mthread::start_new_thread(deep, "bad", [] {}); });
  EXPECT_TRUE(is<mthread::out_of_range>(too_deep));
  EXPECT_EQ(argument_of(too_deep), "mailbox_depth");
  EXPECT_EQ(mthread::list().size(), 1u) << "nothing was started";
}

TEST_F(Errors, JoiningTheMainThreadOrItselfIsAnInvalidId) {
  const auto of_main = thrown_by([] { mthread::join(mthread::get_repl_id(), 1ms); });
  EXPECT_TRUE(is<mthread::invalid_argument>(of_main));
  EXPECT_EQ(argument_of(of_main), "id");
  std::exception_ptr itself;
  std::atomic<bool> done{false};
  const auto id = mthread::start_new_thread("self-joiner", [&] {
    itself = thrown_by([] { mthread::join(mthread::get_self_id(), 1ms); });
    done = true;
  });
  ASSERT_TRUE(mthread::join(id, 5s));
  ASSERT_TRUE(done.load());
  EXPECT_TRUE(is<mthread::invalid_argument>(itself));
  EXPECT_EQ(argument_of(itself), "id");
}

TEST_F(Errors, WaitingInAThreadMthreadDoesNotKnowIsTheWrongThread) {
  std::exception_ptr from_get_msg;
  std::exception_ptr from_wait;
  std::thread foreign([&] {
    from_get_msg = thrown_by([] { mthread::get_msg(1ms); });
    from_wait = thrown_by([] { mthread::wait(1ms); });
  });
  foreign.join();
  EXPECT_TRUE(is<mthread::wrong_thread>(from_get_msg));
  EXPECT_TRUE(is<mthread::wrong_thread>(from_wait));
  EXPECT_FALSE(is<mthread::invalid_argument>(from_wait));
}

TEST_F(Errors, SettingReplAcceptOutsideTheMainThreadIsTheWrongThread) {
  std::exception_ptr thrown;
  const auto id = mthread::start_new_thread(
      "setter", [&] { thrown = thrown_by([] { mthread::repl_accept_msg(false); }); });
  ASSERT_TRUE(mthread::join(id, 5s));
  EXPECT_TRUE(is<mthread::wrong_thread>(thrown));
  EXPECT_TRUE(mthread::repl_accept_msg()) << "the setting is unchanged";
}

}  // namespace
