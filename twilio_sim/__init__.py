"""A local Twilio-compatible server (`mantle twilio-sim`): the Messages API, signed webhooks and
status callbacks, so SMS apps can be built and tested without a Twilio account."""
