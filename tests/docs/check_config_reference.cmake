# docs/configuration.md must be what `wharf config-reference` prints (the flag tables).
# cmake -DWHARF=build/wharf -DDOC=docs/configuration.md -P check_config_reference.cmake
execute_process(COMMAND ${WHARF} config-reference OUTPUT_VARIABLE generated RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${WHARF} config-reference failed (exit ${rc})")
endif()
file(READ ${DOC} committed)
if(NOT "${generated}" STREQUAL "${committed}")
  get_filename_component(out ${DOC} NAME)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${out}.generated)
  file(WRITE ${out} "${generated}")
  execute_process(COMMAND diff -u ${DOC} ${out})
  message(FATAL_ERROR "docs/configuration.md differs from the flag tables. Regenerate it:\n"
                      "  ${WHARF} config-reference > ${DOC}")
endif()
