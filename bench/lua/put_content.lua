-- PUT /unified/lms/content with a rotating set of 5,000 external references: a mix of creates
-- (first pass) and replacements (afterwards), as a catalogue sync produces.
local counter = 0
request = function()
  counter = counter + 1
  local ref = "catalogue-" .. (counter % 5000)
  local body = '{"external_reference":"' .. ref .. '","title":"Course ' .. counter .. '",' ..
    '"content_url":"https://example.com/' .. ref .. '","duration":"PT45M","active":true,' ..
    '"content_type":{"value":"video"},"tags":["compliance"]}'
  return wrk.format("PUT", "/unified/lms/content", nil, body)
end
