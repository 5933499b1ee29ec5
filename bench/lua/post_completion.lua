-- POST a distinct completion per request (a new learner each time), so every request is a real
-- insert and never a dedupe hit. Headers (auth, account, content type) come from wrk's -H flags.
local counter = 0
local prefix = tostring(math.random(1, 1000000000)) .. tostring(os.time())
local body = '{"learning_object_external_reference":"learning-content-123",' ..
  '"learning_object_id":"e3gd34-23tr21-er234-345er56","completed_at":"2021-07-21T14:00:00.000Z",' ..
  '"time_spent":"PT1H30M45S","passthrough":{"other_known_names":"John Doe"},' ..
  '"result":{"value":"Pass"},"score":{"percentage":87,"raw_value":"87 / 100"}}'

request = function()
  counter = counter + 1
  return wrk.format("POST", "/unified/lms/users/u" .. prefix .. "-" .. counter .. "/completions", nil, body)
end
